import ij.IJ;
import ij.Macro;
import ij.plugin.PlugIn;

import java.nio.file.Files;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;

/**
 * Test stand-in for ThunderSTORM's recordable commands: "Export results" copies the CSV named by
 * the system property dblink.test.csv to the filepath option (nothing when it is unset, as with
 * no results table open); "Run analysis" and "Camera setup" only log.
 */
public class ThunderSTORM_Stub implements PlugIn {
    public void run(String arg) {
        String options = Macro.getOptions();
        if ("export".equals(arg)) {
            String target = Macro.getValue(options, "filepath", null);
            String source = System.getProperty("dblink.test.csv");
            if (target == null || source == null) return;
            try {
                Files.copy(Paths.get(source), Paths.get(target), StandardCopyOption.REPLACE_EXISTING);
            } catch (Exception e) {
                IJ.log("stub export failed: " + e);
            }
        } else {
            IJ.log("stub " + arg + ": " + options);
        }
    }
}
