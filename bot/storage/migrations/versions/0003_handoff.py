"""hand-off: ownership, working hours queue

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Hand-offs get a queue (per agency), priority inputs (emergency, linked appeal), out-of-hours
contact and description, ownership times, a resolution and a small history; feedback gets what a
CSAT rating is about (operator, agency, hand-off or appeal); operators' presence for the
waiting-time estimate. Batch mode, so SQLite can alter the tables.
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queue', sa.String(length=40), server_default='general', nullable=False))
        batch_op.add_column(sa.Column('agency', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('topic', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('emergency', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('appeal_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('scheduled_for', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('contact', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('description', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('taken_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('operator_activity_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('citizen_waiting_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolution', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('closed_by', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('history', sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f('ix_handoffs_queue'), ['queue'], unique=False)
        batch_op.create_foreign_key('fk_handoffs_appeal_id_appeals', 'appeals', ['appeal_id'], ['id'],
                                    ondelete='SET NULL')
    op.execute("UPDATE handoffs SET history = '[]' WHERE history IS NULL")
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.alter_column('history', existing_type=sa.JSON(), nullable=False)

    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('operator', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('agency', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('handoff_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('appeal_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_feedback_handoff_id_handoffs', 'handoffs', ['handoff_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_foreign_key('fk_feedback_appeal_id_appeals', 'appeals', ['appeal_id'], ['id'],
                                    ondelete='SET NULL')

    op.create_table('operator_presence',
    sa.Column('operator', sa.String(length=120), nullable=False),
    sa.Column('queues', sa.JSON(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('online', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('operator')
    )


def downgrade() -> None:
    op.drop_table('operator_presence')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_constraint('fk_feedback_appeal_id_appeals', type_='foreignkey')
        batch_op.drop_constraint('fk_feedback_handoff_id_handoffs', type_='foreignkey')
        batch_op.drop_column('appeal_id')
        batch_op.drop_column('handoff_id')
        batch_op.drop_column('agency')
        batch_op.drop_column('operator')
        batch_op.drop_column('kind')
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.drop_constraint('fk_handoffs_appeal_id_appeals', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_handoffs_queue'))
        for column in ('history', 'closed_by', 'resolution', 'citizen_waiting_since', 'operator_activity_at',
                       'taken_at', 'description', 'contact', 'scheduled_for', 'appeal_id', 'emergency', 'topic',
                       'agency', 'queue'):
            batch_op.drop_column(column)
