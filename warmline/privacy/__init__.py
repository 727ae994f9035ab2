"""Privacy by default: a citizen's data exported or erased by phone number, and the keys of the data
encrypted at rest rotated (`warmline privacy ...`)."""
