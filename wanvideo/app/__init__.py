"""wanvideo.app: the jobs built on the engine — the command line (`cli`), the InfiniteTalk and WanAnimate
job pipelines (`pipeline`, `animate_pipeline`, with what both share in `jobs`), the multi-GPU launcher,
the checks made before a run, media reading and the model-folder map."""
