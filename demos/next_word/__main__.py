"""`python -m demos.next_word`: this tab alone on its own page, served as the gallery is."""

from demos import next_word
from gallery import server

if __name__ == "__main__":
    server.standalone(next_word.create_demo, next_word.TITLE)
