"""Guest privacy: normalised hashes of contact details for matching with ad platforms."""
