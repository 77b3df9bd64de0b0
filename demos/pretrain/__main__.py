"""`python -m demos.pretrain`: this tab alone on its own page, served as the gallery is."""

from demos import pretrain
from gallery import server

if __name__ == "__main__":
    server.standalone(pretrain.create_demo, pretrain.TITLE)
