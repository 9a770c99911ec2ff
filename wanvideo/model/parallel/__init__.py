"""wanvideo.model.parallel: several GPUs — process groups (`distributed`), collectives, sequence parallel
and ring attention."""
