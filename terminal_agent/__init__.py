"""The store-terminal agent: reads ICOCA cards with nfcpy and signs requests to the Chiiki Points API."""
