"""`python -m demos.prompting`: this tab alone on its own page, served as the gallery is."""

from demos import prompting
from gallery import server

if __name__ == "__main__":
    server.standalone(prompting.create_demo, prompting.TITLE)
