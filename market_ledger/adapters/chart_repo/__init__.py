"""chart-repo: the render, feed, upload and image client, and its app wire shapes."""
