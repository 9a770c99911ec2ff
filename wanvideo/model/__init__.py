"""wanvideo.model"""
