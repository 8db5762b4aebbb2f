"""What a training photo is and where it comes from: the photo folder and its labels.csv, the
data pipeline's records and shards, the Stanford classes, framed composites and non-car images,
how the price heads see dollars, and the classes' price labels (``labels/``)."""
