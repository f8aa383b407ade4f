"""Knowledge base: corpus, embeddings, indices and retrieval."""
