"""SQL text helpers: masking, statement splitting, normalisation, written tables."""

from revops_pipelines.warehouse.sqltext import mask_sql, normalise, statements, written_tables


def test_mask_keeps_length_and_hides_literals_and_comments():
    sql = "SELECT 'a;b''c', \"x;y\" -- DROP;\n/* DELETE */ FROM t"
    m = mask_sql(sql)
    assert len(m) == len(sql) and ";" not in m and "DROP" not in m and "DELETE" not in m


def test_statements_and_normalise():
    assert statements("SELECT 1; ; SELECT ';' -- ;\n") == ["SELECT 1", "SELECT ';' -- ;"]
    assert (
        normalise("SELECT  a,\n  b -- note\nFROM t WHERE s = 'a  b' ;")
        == "SELECT a, b FROM t WHERE s = 'a  b'"
    )


def test_written_tables():
    assert written_tables("INSERT INTO public.a VALUES (1); DELETE FROM b; UPDATE c SET x = 1") == [
        "a",
        "b",
        "c",
    ]
    assert written_tables("MERGE INTO d USING e ON 1=1 WHEN MATCHED THEN DELETE") == ["d"]
    assert written_tables(
        "ALTER TABLE f ADD COLUMN g TEXT NULL; DROP TABLE IF EXISTS h; TRUNCATE TABLE i"
    ) == ["f", "h", "i"]
    assert written_tables("CREATE FACT TABLE IF NOT EXISTS j (k TEXT)") == []  # changes nothing readable
    assert written_tables("CREATE TABLE k (a INT)") == ["k"]
    assert written_tables("SELECT * FROM l WHERE note = 'INSERT INTO m'") == []
