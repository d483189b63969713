"""Delivery: what changed in each dashboard table and how it reaches Tableau, on the audit ledger.

Above `marts/` (which builds tables from records) and `tableau/` (which only talks to Tableau):
- `extracts`: a dashboard table built from the state store and written as a Hyper extract;
- `changed_groups`: the rows of a table whose source records changed, rebuilt without the rest;
- `row_changes`: pure change sets (row keys, content hashes), Tableau actions, request ids;
- `payload`: the .hyper files of incremental updates, split under Tableau's byte limit;
- `deliver`: a table to its data source, in full when needed, else only the changed rows;
- `publish`: `publish_extract`, the delivery with every row version put on the audit ledger.
"""
