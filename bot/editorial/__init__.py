"""Editorial tools: knowledge-base versions, drafts and publishing, and learning from traffic."""
