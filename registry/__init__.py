"""Vitrine's domain: blobs, commits, refs, repos, auth and what we learn from each model version."""
