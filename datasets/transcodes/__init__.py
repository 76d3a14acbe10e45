"""Re-encoded copies of a manifest's videos in the codecs the decoders and extractors need."""
