"""Maintainer tools: run notebooks headlessly (`nbrun`), strip their outputs (`strip_notebooks`)."""
