"""wanvideo.audio"""
