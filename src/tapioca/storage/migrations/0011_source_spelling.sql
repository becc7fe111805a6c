-- How each site spells a source Tapioca does not know by name: the first spelling stored
-- (sites/spellings.py). Seeded with the sources stored so far, so that a source stored
-- before keeps the spelling its rows have.
CREATE TABLE source_spelling (
    site_id {key} NOT NULL,
    key {key} NOT NULL,
    name text NOT NULL,
    PRIMARY KEY (site_id, key)
);
INSERT INTO source_spelling (site_id, key, name)
SELECT site_id, lower(source), min(source) FROM event
WHERE source IS NOT NULL GROUP BY site_id, lower(source);
