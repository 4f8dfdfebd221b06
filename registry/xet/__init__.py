"""The Xet protocol, server side: hashes, xorbs, shards, tokens and the CAS store over the blob store."""
