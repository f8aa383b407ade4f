"""The fixed vocabularies of channel and agency ids (see knowledge/corpus/SCHEMA.md)."""

CHANNEL_IDS: tuple[str, ...] = (
    "personal_reception", "public_reception", "front_office", "call_center", "contact_center",
    "helpline", "head_blog", "online_reception", "social_media", "official_website",
    "egov_portal", "open_government", "manual_submission", "mobile_app", "e_otinish", "psc",
    "emergency_112",
)
AGENCY_IDS: tuple[str, ...] = (
    "akimat", "health", "education", "labour_social", "finance_tax", "internal_affairs",
    "justice", "digital", "ecology", "information", "emergency",
)
KINDS: tuple[str, ...] = ("channel", "faq", "service", "agency")
LANGUAGES: tuple[str, ...] = ("kk", "ru")
APPEAL_TYPES: tuple[str, ...] = ("statement", "complaint", "proposal", "request", "feedback", "report")
INTENTS: tuple[str, ...] = (
    "faq", "channel", "appeal", "status", "operator", "smalltalk", "out_of_scope", "emergency",
)
