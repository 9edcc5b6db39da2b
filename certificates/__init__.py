"""The e-certificate library: licence types, licences, identifiers, lifecycle, bulk jobs, blobs."""
