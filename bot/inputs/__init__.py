"""Untrusted input: links fetched safely (`fetch`) and pictures decoded within limits (`images`)."""
