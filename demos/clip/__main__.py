"""`python -m demos.clip`: this tab alone on its own page, served as the gallery is."""

from demos import clip
from gallery import server

if __name__ == "__main__":
    server.standalone(clip.create_demo, clip.TITLE)
