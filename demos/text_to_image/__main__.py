"""`python -m demos.text_to_image`: this tab alone on its own page, served as the gallery is."""

from demos import text_to_image
from gallery import server

if __name__ == "__main__":
    server.standalone(text_to_image.create_demo, text_to_image.TITLE)
