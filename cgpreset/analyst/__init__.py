"""The analyst's view of the store: export to files, read into a notebook, an offline HTML report."""
