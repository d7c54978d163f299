"""The unit of work's typed writes, one module per aggregate; store/uow.py composes them."""
