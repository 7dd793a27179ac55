"""What every remote HTTP client shares: the httpx client, retries, JSON decoding, errors."""
