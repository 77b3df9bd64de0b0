"""`python -m demos.inpainting`: this tab alone on its own page, served as the gallery is."""

from demos import inpainting
from gallery import server

if __name__ == "__main__":
    server.standalone(inpainting.create_demo, inpainting.TITLE)
