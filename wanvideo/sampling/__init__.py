"""wanvideo.sampling"""
