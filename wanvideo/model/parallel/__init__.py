"""wanvideo.model.parallel: several GPUs — process groups (`distributed`), collectives, sequence parallel and ring
attention; the in-host modes: guidance split (threads, a model copy per device), layer split (the blocks spread over
devices) and a pool of worker processes running sequence parallel (optionally FSDP-sharded weights)."""
