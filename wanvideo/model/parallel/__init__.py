"""Several devices for one generation: guidance split (threads, a model copy per device), layer split (the blocks
spread over devices) and sequence parallel in a pool of worker processes (optionally FSDP-sharded weights)."""
