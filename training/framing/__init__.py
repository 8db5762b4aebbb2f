"""The heads fitted on a finished model file: the found box and whole-car check, the natural-photo
whole-car head, the make and body heads; their data and their held-out reports."""
