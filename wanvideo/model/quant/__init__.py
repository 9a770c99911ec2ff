"""wanvideo.model.quant: quantised weights — GGUF files (read, dequantise, write), fp8 and packed weights."""
