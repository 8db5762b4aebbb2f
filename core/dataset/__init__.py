"""The data pipeline: scrape used-car listings, store their photos, de-duplicate, filter junk,
and hand the result to training.  Driven by ``carvalue-data <stage>`` (core/dataset/cli.py);
every stage is resumable and records what it did in one SQLite database:

    ids.py            which listing IDs, in which (seeded, shuffled, sharded) order
    http_client.py    polite GETs: rate limit, timeouts, retries with backoff, Retry-After
    listing_page.py   the listing JSON embedded in a page -> Listing
    image_store.py    <root>/<hh>/<sha256> photo store, atomic writes, 256-px JPEG encoding
    database.py       schema (WAL), outcomes and statuses
    scrape.py         workers fetch and process, one writer commits listing by listing
    verify.py         find and repair missing/corrupt stored photos
    phash.py/dedup.py the seed's perceptual hash; duplicates are dropped
    labels.py         hand labels (the Qt labeller is carvalue_gui/labeller.py)
    features.py       MobileNetV2 trunk or CLIP features
    junk_filter.py    linear SVM + threshold for <1% good-photo loss, saved without pickle
    filter_stage.py   train / apply the filter over the database
    export.py         records_from_db(): what training reads; shards.py: WebDataset tars
    merge.py          several machines' databases and stores into one (merge_versions.py: the rule)
"""
