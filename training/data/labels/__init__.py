"""The price labels of the Stanford classes: MSRP matched per class, depreciation from the listings,
and the labels report."""
