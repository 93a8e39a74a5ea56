"""The programme's figures per calendar month, kept up to date as the ledger is written (from the table's stream)."""
