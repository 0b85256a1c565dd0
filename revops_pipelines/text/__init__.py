"""Text processing for call transcripts and tickets (sentiment, risk phrases)."""
