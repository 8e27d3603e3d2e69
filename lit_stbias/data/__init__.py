"""Video sources: synthetic action and VOS videos, video files and frame folders, real sample clips."""
