//! A private Ceph RGW for the S3 tests.
