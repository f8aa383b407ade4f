"""open appeals' deadlines recounted as the APPC counts them (Arts. 64, 76, 99)

Before this revision a deadline ran from the day of receipt, and a complaint had 15 working days. The Code
counts from registration (the next working day for an appeal that arrives on a day off) and gives a
complaint 20 working days (docs/legal.md, points 3 and 7). An open appeal whose deadline staff never
changed (no extension, no redirection) gets the deadline the current rules give; the new date is never
earlier than the stored one, so nothing becomes overdue by this. Answered, rejected and closed appeals keep
their history as it was.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

OPEN = ('registered', 'sent', 'in_progress')


def upgrade() -> None:
    from bot.intake.deadlines import due_date

    appeals = sa.table('appeals', sa.column('id', sa.Integer), sa.column('status', sa.String),
                       sa.column('appeal_type', sa.String), sa.column('received_at', sa.DateTime(timezone=True)),
                       sa.column('due_date', sa.Date))
    events = sa.table('appeal_events', sa.column('appeal_id', sa.Integer), sa.column('status', sa.String))
    changed = sa.select(events.c.appeal_id).where(events.c.status.in_(('extended', 'redirected')))
    conn = op.get_bind()
    rows = conn.execute(sa.select(appeals.c.id, appeals.c.appeal_type, appeals.c.received_at, appeals.c.due_date)
                        .where(appeals.c.status.in_(OPEN), appeals.c.id.not_in(changed))).all()
    for appeal_id, appeal_type, received_at, stored in rows:
        recounted = due_date(received_at, appeal_type)
        if recounted > stored:
            conn.execute(appeals.update().where(appeals.c.id == appeal_id).values(due_date=recounted))


def downgrade() -> None:
    # the earlier dates were wrong under the Code and are not kept; there is no schema change to undo
    pass
