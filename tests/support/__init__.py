"""Helpers shared by the tests and the benchmarks: test PKIs, hostile documents, a browser, an S3 server, sample
licences. bench/ and tests import these, never a test module or a conftest, as libraries."""
