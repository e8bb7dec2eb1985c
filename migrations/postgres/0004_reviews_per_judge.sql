-- A human label belongs to one judge (one trait): "is this answer in Spanish?" and "is it
-- in capitals?" are separate questions, and a judge's agreement with people is computed
-- from the labels made for it. `label` keeps its three words, read per judge: 'misaligned'
-- = the judge's trait is present, 'aligned' = absent, 'unsure'.
--
-- A label made before labels had judges was compared with every judge of its sample, so it
-- becomes one label per judge that judged the sample (what it meant, kept exactly). A label
-- on a sample no judge has judged yet keeps judge '' (for no judge), so nothing is lost.
CREATE TABLE reviews_per_judge (
    sample_id   BIGINT NOT NULL REFERENCES samples(id),
    judge       TEXT NOT NULL,
    label       TEXT NOT NULL CHECK (label IN ('misaligned', 'aligned', 'unsure')),
    note        TEXT NOT NULL DEFAULT '',
    updated_at  TEXT NOT NULL DEFAULT inoculab_now(),
    PRIMARY KEY (sample_id, judge)
);

INSERT INTO reviews_per_judge (sample_id, judge, label, note, updated_at)
SELECT r.sample_id, j.judge, r.label, r.note, r.updated_at
FROM reviews r JOIN (SELECT DISTINCT sample_id, judge FROM judgements) j ON j.sample_id = r.sample_id;

INSERT INTO reviews_per_judge (sample_id, judge, label, note, updated_at)
SELECT r.sample_id, '', r.label, r.note, r.updated_at
FROM reviews r WHERE NOT EXISTS (SELECT 1 FROM judgements j WHERE j.sample_id = r.sample_id);

DROP TABLE reviews;
ALTER TABLE reviews_per_judge RENAME TO reviews;
