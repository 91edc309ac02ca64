"""Talking to the Hugging Face Hub: retries and errors, the crawler, download budgets."""
