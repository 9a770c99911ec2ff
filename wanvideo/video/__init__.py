"""wanvideo.video"""
