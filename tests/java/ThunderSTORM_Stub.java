import ij.IJ;
import ij.Macro;
import ij.WindowManager;
import ij.plugin.PlugIn;
import ij.text.TextWindow;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;

/**
 * Test stand-in for ThunderSTORM's recordable commands: "Run analysis" opens a window titled as
 * ThunderSTORM's results table; "Export results" copies the CSV named by the system property
 * dblink.test.csv to the filepath option (nothing when it is unset) and, with saveprotocol=true,
 * writes a protocol next to it as ThunderSTORM does (x.csv -> x-protocol.txt); "Camera setup" logs.
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
                if ("true".equals(Macro.getValue(options, "saveprotocol", "false"))) {
                    String p = target.substring(0, target.lastIndexOf('.')) + "-protocol.txt";
                    Files.write(Paths.get(p), ("{\n  \"version\": \"ThunderSTORM (stub)\",\n  \"imageInfo\": {\n"
                        + "    \"title\": \"" + System.getProperty("dblink.test.image", "raw") + "\"\n  },\n"
                        + "  \"cameraSettings\": {\n    \"pixelSize\": 80.0\n  }\n}").getBytes(StandardCharsets.UTF_8));
                }
            } catch (Exception e) {
                IJ.log("stub export failed: " + e);
            }
        } else if ("analysis".equals(arg)) {
            IJ.log("stub " + arg + ": " + options);
            if (WindowManager.getWindow("ThunderSTORM: results") == null)
                new TextWindow("ThunderSTORM: results", "frame\tx [nm]\ty [nm]", "", 300, 200);
        } else {
            IJ.log("stub " + arg + ": " + options);
        }
    }
}
