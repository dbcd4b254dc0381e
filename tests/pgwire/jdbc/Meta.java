// pgjdbc DatabaseMetaData against tarndb (run by tests/pgwire/test_jdbc.py): java -cp postgresql.jar Meta.java PORT PASSWORD SCHEMA
import java.sql.*;

public class Meta {
    static void dump(String label, ResultSet rs, String... cols) throws SQLException {
        StringBuilder sb = new StringBuilder();
        while (rs.next()) {
            sb.append(label).append(":");
            for (String c : cols) sb.append(" ").append(c).append("=").append(rs.getString(c));
            sb.append("\n");
        }
        System.out.print(sb);
    }
    public static void main(String[] a) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + a[0] + "/postgres?sslmode=require";
        try (Connection c = DriverManager.getConnection(url, "postgres", a[1])) {
            DatabaseMetaData md = c.getMetaData();
            System.out.println("product: " + md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
            String s = a[2];
            dump("table", md.getTables(null, s, "%", new String[]{"TABLE"}), "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE");
            dump("column", md.getColumns(null, s, "%", "%"), "TABLE_NAME", "COLUMN_NAME", "TYPE_NAME", "DATA_TYPE", "IS_NULLABLE", "IS_AUTOINCREMENT");
            dump("pk", md.getPrimaryKeys(null, s, "items"), "COLUMN_NAME", "PK_NAME", "KEY_SEQ");
            dump("index", md.getIndexInfo(null, s, "items", false, false), "INDEX_NAME", "NON_UNIQUE", "COLUMN_NAME", "ORDINAL_POSITION");
            dump("fk", md.getImportedKeys(null, s, "child"), "PKTABLE_NAME", "PKCOLUMN_NAME", "FKCOLUMN_NAME", "FK_NAME");
            int n = 0; boolean int4 = false;
            try (ResultSet rs = md.getTypeInfo()) { while (rs.next()) { n++; if ("int4".equals(rs.getString("TYPE_NAME"))) int4 = true; } }
            System.out.println("typeinfo: " + n + " int4=" + int4);
            try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT id, name FROM " + s + ".items ORDER BY id LIMIT 2")) {
                dump("row", rs, "id", "name");
            }
        }
    }
}
