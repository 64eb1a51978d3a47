package dblink;

import ij.IJ;
import ij.ImagePlus;
import ij.Macro;
import ij.Menus;
import ij.Prefs;
import ij.WindowManager;
import ij.gui.GenericDialog;
import ij.gui.Roi;
import ij.io.FileInfo;
import ij.io.FileSaver;
import ij.io.TiffEncoder;
import ij.macro.Interpreter;
import ij.measure.Calibration;

import java.awt.GraphicsEnvironment;
import java.awt.Rectangle;
import java.awt.Frame;
import java.io.BufferedOutputStream;
import java.io.BufferedReader;
import java.io.DataOutputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Plugins &gt; DBlink &gt; DBlink Reconstruct...: reconstruct a super-resolved video from a
 * ThunderSTORM localization table with dblink, and show or save it as a calibrated hyperstack.
 *
 * <p>Macro use (options are the dialog's keys):
 * {@code run("DBlink Reconstruct...", "table=[/data/locs.csv] model=filaments save=[/data/out.tif]");}
 * Without menus (headless ImageJ1) use {@code call("dblink.DBlink_Reconstruct.macro", options)}.
 *
 * <p>Two runtimes give the same hyperstack: in-process, when Python registered a
 * {@link DBlinkRuntime} (Fiji started with {@code dblink fiji} or PyImageJ), else the
 * {@code dblink reconstruct} command line as a subprocess, whose JSON progress drives ImageJ's
 * progress bar. Esc cancels.
 */
public class DBlink_Reconstruct implements ij.plugin.PlugIn {
    /** dblink's version, one source: python/dblink/__init__.py (build.sh and Maven write it into
     *  dblink/version.properties; tests/test_version.py checks the copies). */
    public static final String VERSION = readVersion();
    public static final String THUNDERSTORM = "ThunderSTORM results";
    /** table=[open image]: the active image is a stack of localization maps (e.g. Deep-STORM's
     *  output), one map per raw frame; it is handed to dblink as a calibrated TIFF. */
    public static final String OPEN_IMAGE = "open image";
    /** The title of ThunderSTORM's results window. */
    static final String THUNDERSTORM_WINDOW = "ThunderSTORM: results";
    /** The option keys, as recorded by the dialog and read from macro options. */
    public static final String[] KEYS = {"table", "model", "auto", "pixel_size", "frames_per_step", "window",
        "stride", "roi", "camera_pixel", "columns", "first_frame", "last_frame", "device", "batch", "precision",
        "tta", "tile", "max_memory", "exposure", "skip_confidence", "confidence_every", "show", "save", "python"};
    static final String[] BOOLEAN_KEYS = {"auto", "skip_confidence", "show"};
    /** Keys whose value 0 means something (tile=0: never tile); for the others 0 = the default. */
    static final String[] ZERO_KEYS = {"tile"};
    static final String[] DEVICES = {"auto", "cpu", "cuda", "mps"};
    static final String[] PRECISIONS = {"fp32", "bf16", "fp16"};
    static final String[] TTAS = {"1", "4", "8"};
    /** stride=auto (the default) is resolved in Python (dblink.imagej.auto_stride): exact (1) on a
     *  GPU, 8 on a CPU (F1 0.9813 vs 0.9812 exact, README "Stride"). */
    static final String[] STRIDES = {"auto", "1", "2", "4", "8", "16"};

    static String readVersion() {
        try {
            InputStream in = DBlink_Reconstruct.class.getResourceAsStream("/dblink/version.properties");
            if (in == null) return "unknown";
            try {
                Properties p = new Properties();
                p.load(in);
                String v = p.getProperty("version", "unknown").trim();
                return v.startsWith("${") ? "unknown" : v;
            } finally { in.close(); }
        } catch (IOException e) { return "unknown"; }
    }

    private static volatile DBlinkRuntime runtime;
    private static volatile String lastError = "";

    /** Called from Python to route reconstructions in-process (null unregisters). */
    public static void setRuntime(DBlinkRuntime r) { runtime = r; }

    public static DBlinkRuntime getRuntime() { return runtime; }

    /** The message of the last failed run ("" if the last run succeeded), for macros. */
    public static String lastError() { return lastError; }

    @Override
    public void run(String arg) {
        if ("about".equals(arg)) {
            IJ.showMessage("DBlink " + VERSION, "DBlink: super-resolved SMLM videos from localization tables\n"
                + "(Saguy et al., Nature Methods 2023). Runtime: "
                + (runtime != null ? "in-process Python (dblink " + runtime.version() + ")" : "dblink command line (" + python(null) + ")"));
            return;
        }
        if ("settings".equals(arg)) { settings(); return; }
        String options = Macro.getOptions();
        Map<String, String> o;
        if (options != null) {
            o = parse(options);
        } else if (GraphicsEnvironment.isHeadless()) {
            fail("no options given and no display for a dialog: call with options, e.g. "
                + "run(\"DBlink Reconstruct...\", \"table=[/path/locs.csv] save=[/path/out.tif]\")", true);
            return;
        } else {
            o = dialog();
            if (o == null) return;
        }
        runWith(o, options != null);
    }

    /**
     * Entry point that needs no menus (headless ImageJ1, batch scripts):
     * {@code call("dblink.DBlink_Reconstruct.macro", "table=[...] save=[...]")}.
     * @return "ok" or "error: message"
     */
    public static String macro(String options) {
        ImagePlus imp = new DBlink_Reconstruct().runWith(parse(options == null ? "" : options), true);
        return imp != null ? "ok" : "error: " + lastError;
    }

    public ImagePlus runWith(Map<String, String> o, boolean fromMacro) {
        lastError = "";
        IJ.resetEscape();
        long t0 = System.nanoTime();
        try {
            ImagePlus imp = execute(o);
            double seconds = (System.nanoTime() - t0) / 1e9;
            if (o.containsKey("save"))
                IJ.log("DBlink: wrote " + o.get("save") + " (" + describe(imp) + ") in "
                    + String.format(java.util.Locale.ROOT, "%.1f", seconds) + " s");
            if (o.containsKey("show") && !GraphicsEnvironment.isHeadless()) imp.show();
            return imp;
        } catch (Cancelled e) {
            cancelled();
        } catch (Throwable e) {
            String msg = e.getMessage() != null ? e.getMessage() : e.toString();
            if (msg.contains("cancelled by the user")) {
                cancelled();
                return null;
            }
            fail(cleanMessage(msg), fromMacro);
        }
        return null;
    }

    /** "T x H x W px, C channels" of a result hyperstack. */
    static String describe(ImagePlus imp) {
        return imp.getNFrames() + " x " + imp.getHeight() + " x " + imp.getWidth() + " px (T x H x W), "
            + imp.getNChannels() + (imp.getNChannels() == 1 ? " channel" : " channels");
    }

    /** A cancelled run: say so, and give its memory back (the partial result is garbage now). */
    static void cancelled() {
        IJ.showStatus("DBlink: cancelled");
        IJ.showProgress(1.0);
        lastError = "cancelled";
        IJ.log("DBlink: cancelled");
        System.gc();
    }

    /** Parse macro options into a map of the known keys (booleans present as "true"). */
    public static Map<String, String> parse(String options) {
        Map<String, String> o = new LinkedHashMap<String, String>();
        String padded = " " + options + " ";
        for (String key : KEYS) {
            boolean isBool = false;
            for (String b : BOOLEAN_KEYS) if (b.equals(key)) isBool = true;
            if (isBool) {
                if (padded.contains(" " + key + " ")) o.put(key, "true");
            } else {
                String v = Macro.getValue(options, key, null);
                boolean zeroMeans = false;
                for (String z : ZERO_KEYS) if (z.equals(key)) zeroMeans = true;
                if (v != null && v.trim().length() > 0 && (zeroMeans || !isZero(v))) o.put(key, v.trim());
            }
        }
        return o;
    }

    static boolean isZero(String v) {
        try { return Double.parseDouble(v.trim()) == 0.0; } catch (NumberFormatException e) { return false; }
    }

    /** The dialog (under a macro: its fields read from the macro options, as ImageJ does). */
    public Map<String, String> dialog() {
        GenericDialog gd = new GenericDialog("DBlink Reconstruct");
        gd.addStringField("Table", Prefs.get("dblink.table", THUNDERSTORM), 40);
        gd.addMessage("A localization file (ThunderSTORM CSV, Picasso/DECODE/SMAP HDF5 or CSV, ShareLoc .smlm,\n"
            + "a map-stack TIFF), \"" + THUNDERSTORM + "\" for the open results table, or \"" + OPEN_IMAGE + "\"\n"
            + "for the active image as a stack of localization maps (one per raw frame, e.g. Deep-STORM's).");
        gd.addStringField("Model", Prefs.get("dblink.model", "filaments"), 20);
        gd.addCheckbox("Auto", false);
        gd.addMessage("Auto: choose model, frames per step, window and stride from the data (as dblink suggest)\n"
            + "where they are left at their defaults.");
        gd.addNumericField("Pixel_size", 0, 1, 8, "nm (0 = the model's)");
        gd.addNumericField("Frames_per_step", 0, 0, 8, "raw frames (0 = the model's)");
        gd.addNumericField("Window", 0, 0, 8, "± steps (0 = the model's)");
        gd.addChoice("Stride", STRIDES, Prefs.get("dblink.stride", "auto"));
        gd.addMessage("Stride: outputs kept per window. 1 = exact (the paper's mode): one network run per\n"
            + "time point, fine on a GPU but slow on a CPU (~3 s per step of 100 x 130 px on 2 cores).\n"
            + "8 = about 8x faster, same measured quality (F1 0.9813 vs 0.9812). auto = 1 on a GPU, 8 on a CPU.");
        gd.addStringField("ROI", "", 30);
        gd.addMessage("ROI: x0,y0,width,height in nm, \"selection\" (of the active image), or empty for all.");
        gd.addNumericField("Camera_pixel", 0, 1, 8, "nm (for tables in px)");
        gd.addStringField("Columns", "", 30);
        gd.addMessage("Columns: for a CSV of any other tool, e.g. frame=Frame,x=Xc,y=Yc,unit=nm,base=1 (empty: by format).");
        gd.addNumericField("First_frame", 1, 0, 8, "raw frame of step 1");
        gd.addNumericField("Last_frame", 0, 0, 8, "(0 = the table's last)");
        gd.addChoice("Device", DEVICES, "auto");
        gd.addNumericField("Batch", 0, 0, 8, "windows per call (0 = automatic)");
        gd.addChoice("Precision", PRECISIONS, "fp32");
        gd.addChoice("TTA", TTAS, "1");
        gd.addMessage("TTA: average 4 mirrored (or 8 mirrored and transposed) copies; 4x/8x slower, 1 = off.");
        gd.addStringField("Tile", "", 8);
        gd.addStringField("Max_memory", Prefs.get("dblink.max_memory", ""), 8);
        gd.addMessage("Tile: px per tile (empty = only if needed, 0 = never). Max memory: e.g. 8G (empty = half the free RAM).");
        gd.addNumericField("Exposure", 0, 4, 8, "s per raw frame (0 = unknown)");
        gd.addCheckbox("Skip_confidence", false);
        gd.addNumericField("Confidence_every", 0, 0, 8, "steps (0 = automatic, 1 = every step)");
        gd.addCheckbox("Show", true);
        gd.addStringField("Save", "", 40);
        gd.addMessage("Save: a .tif path, or empty to only show the result. With ThunderSTORM's table,\n"
            + "its export (.thunderstorm.csv) and protocol are kept next to the saved file.");
        gd.showDialog();
        if (gd.wasCanceled()) return null;
        Map<String, String> o = new LinkedHashMap<String, String>();
        putString(o, "table", gd.getNextString());
        putString(o, "model", gd.getNextString());
        if (gd.getNextBoolean()) o.put("auto", "true");
        putNumber(o, "pixel_size", gd.getNextNumber());
        putNumber(o, "frames_per_step", gd.getNextNumber());
        putNumber(o, "window", gd.getNextNumber());
        putString(o, "stride", gd.getNextChoice());
        putString(o, "roi", gd.getNextString());
        putNumber(o, "camera_pixel", gd.getNextNumber());
        putString(o, "columns", gd.getNextString());
        double first = gd.getNextNumber();
        if (first != 1) putNumber(o, "first_frame", first);
        putNumber(o, "last_frame", gd.getNextNumber());
        putString(o, "device", gd.getNextChoice());
        putNumber(o, "batch", gd.getNextNumber());
        putString(o, "precision", gd.getNextChoice());
        String tta = gd.getNextChoice();
        if (!"1".equals(tta)) o.put("tta", tta);
        putString(o, "tile", gd.getNextString());
        putString(o, "max_memory", gd.getNextString());
        putNumber(o, "exposure", gd.getNextNumber());
        if (gd.getNextBoolean()) o.put("skip_confidence", "true");
        putNumber(o, "confidence_every", gd.getNextNumber());
        if (gd.getNextBoolean()) o.put("show", "true");
        putString(o, "save", gd.getNextString());
        if (o.containsKey("table")) Prefs.set("dblink.table", o.get("table"));
        if (o.containsKey("model")) Prefs.set("dblink.model", o.get("model"));
        Prefs.set("dblink.max_memory", o.containsKey("max_memory") ? o.get("max_memory") : "");
        Prefs.set("dblink.stride", o.containsKey("stride") ? o.get("stride") : "auto");
        return o;
    }

    static void putString(Map<String, String> o, String k, String v) {
        if (v != null && v.trim().length() > 0) o.put(k, v.trim());
    }

    static void putNumber(Map<String, String> o, String k, double v) {
        if (!Double.isNaN(v) && v != 0) o.put(k, v == Math.rint(v) ? String.valueOf((long) v) : String.valueOf(v));
    }

    void settings() {
        GenericDialog gd = new GenericDialog("DBlink Settings");
        gd.addStringField("Python", Prefs.get("dblink.python", ""), 40);
        gd.addMessage("The Python executable of the environment where dblink is installed\n"
            + "(empty: $DBLINK_PYTHON, else python3 on the PATH).");
        gd.showDialog();
        if (gd.wasCanceled()) return;
        Prefs.set("dblink.python", gd.getNextString().trim());
        Prefs.savePreferences();
    }

    /** Run the reconstruction with the registered runtime, or the command line. */
    ImagePlus execute(Map<String, String> o) throws Exception {
        String table = o.get("table");
        if (table == null) throw new IllegalArgumentException("no table given (option table=[path to a ThunderSTORM CSV])");
        File exported = null, protocol = null;
        boolean keep = false;
        String title = new File(table).getName();
        String source = table, tsProtocol = null;
        if (THUNDERSTORM.equalsIgnoreCase(table)) {
            checkThunderstormTable();
            // saving: keep the exported table (and ThunderSTORM's protocol) next to the output
            keep = o.containsKey("save");
            exported = keep ? keptTable(o.get("save")) : File.createTempFile("dblink-thunderstorm-", ".csv");
            exportThunderstorm(exported);
            protocol = protocolFile(exported);
            tsProtocol = readText(protocol);
            table = exported.getPath();
            title = THUNDERSTORM;
            String image = jsonField(tsProtocol == null ? "" : tsProtocol.replace('\n', ' '), "title");
            source = THUNDERSTORM + (image != null ? " of " + image : "") + (keep ? " (exported to " + exported.getPath() + ")" : "");
            if (keep) IJ.log("DBlink: ThunderSTORM's table kept as " + exported.getPath()
                + (protocol.isFile() ? " (protocol " + protocol.getName() + ")" : ""));
        } else if (OPEN_IMAGE.equalsIgnoreCase(table)) {
            ImagePlus maps = WindowManager.getCurrentImage();
            if (maps == null)
                throw new IllegalArgumentException("no open image to use as a map stack (table=[" + OPEN_IMAGE + "])");
            exported = File.createTempFile("dblink-maps-", ".tif");
            writeTiff(maps, exported);
            table = exported.getPath();
            title = maps.getTitle();
            source = "map stack " + maps.getTitle();
        } else if (!new File(table).isFile()) {
            throw new IllegalArgumentException("table not found: " + table);
        }
        Map<String, String> opts = new LinkedHashMap<String, String>(o);
        opts.put("table", table);
        if ("selection".equalsIgnoreCase(opts.get("roi"))) opts.put("roi", selectionRoi());
        try {
            DBlinkRuntime rt = runtime;
            ready(rt, opts);
            if (IJ.escapePressed()) throw new Cancelled();
            ImagePlus imp = rt != null ? inProcess(rt, opts) : subprocess(opts);
            if (imp == null) throw new IllegalStateException("dblink returned no image");
            imp.setTitle("DBlink of " + title);
            addProvenance(imp, source, tsProtocol);
            IJ.showStatus("DBlink: done (" + imp.getNFrames() + " time points)");
            return imp;
        } finally {
            if (exported != null && !keep) {
                exported.delete();
                if (protocol != null) protocol.delete();
            }
        }
    }

    /** The image as an ImageJ TIFF with its calibration (pixel size, unit, origin), written without
     *  touching the image itself (FileSaver would rename its window after the file). */
    static void writeTiff(ImagePlus imp, File f) throws IOException {
        if (imp.getStackSize() < 2)
            throw new IllegalArgumentException("the open image '" + imp.getTitle() + "' is a single plane; "
                + "a map stack has one localization map per raw frame");
        FileInfo fi = imp.getFileInfo();
        fi.description = new FileSaver(imp).getDescriptionString();
        fi.info = imp.getInfoProperty();
        if (imp.getStack().isVirtual()) fi.virtualStack = (ij.VirtualStack) imp.getStack();
        DataOutputStream out = new DataOutputStream(new BufferedOutputStream(new FileOutputStream(f)));
        try { new TiffEncoder(fi).write(out); } finally { out.close(); }
    }

    /** Where ThunderSTORM's table is kept when the result is saved: out.tif -> out.thunderstorm.csv. */
    static File keptTable(String save) {
        File out = new File(save);
        String name = out.getName();
        int dot = name.lastIndexOf('.');
        String stem = dot > 0 ? name.substring(0, dot) : name;
        return new File(out.getAbsoluteFile().getParentFile(), stem + ".thunderstorm.csv");
    }

    /** ThunderSTORM writes its protocol next to the exported table: x.csv -> x-protocol.txt. */
    static File protocolFile(File csv) {
        String p = csv.getPath();
        int dot = p.lastIndexOf('.');
        return new File((dot > p.lastIndexOf(File.separatorChar) ? p.substring(0, dot) : p) + "-protocol.txt");
    }

    static String readText(File f) {
        if (f == null || !f.isFile()) return null;
        try {
            return new String(java.nio.file.Files.readAllBytes(f.toPath()), StandardCharsets.UTF_8);
        } catch (IOException e) { return null; }
    }

    /** Record where the localizations came from in the hyperstack's Info (ThunderSTORM's settings
     *  included), instead of the name of a temporary export. */
    static void addProvenance(ImagePlus imp, String source, String tsProtocol) {
        Object info = imp.getProperty("Info");
        StringBuilder sb = new StringBuilder(info == null ? "" : info.toString().trim());
        if (sb.length() > 0) sb.append('\n');
        sb.append("dblink.source=").append(source.replace('\n', ' '));
        if (tsProtocol != null)
            sb.append('\n').append("thunderstorm.protocol=").append(tsProtocol.replaceAll("\\s*\n\\s*", " ").trim());
        imp.setProperty("Info", sb.toString());
    }

    /** ThunderSTORM's results table must be open (else its "Export results" throws a
     *  NullPointerException window): asked of ThunderSTORM itself when it is loaded, else of
     *  the windows. */
    static void checkThunderstormTable() {
        if (Menus.getCommands() == null || Menus.getCommands().get("Export results") == null)
            throw new IllegalStateException("ThunderSTORM is not installed (no \"Export results\" command)");
        String none = "no ThunderSTORM results table is open: run Plugins>ThunderSTORM>Run analysis "
            + "(or Import results) first, or give a CSV path as table";
        try {
            Class<?> c = Class.forName("cz.cuni.lf1.lge.ThunderSTORM.results.IJResultsTable", true, IJ.getClassLoader());
            if (!Boolean.TRUE.equals(c.getMethod("isResultsWindow").invoke(null)))
                throw new IllegalStateException(none);
            Object t = c.getMethod("getResultsTable").invoke(null);
            Object rows = t.getClass().getMethod("getRowCount").invoke(t);
            if (rows instanceof Integer && (Integer) rows == 0)
                throw new IllegalStateException("ThunderSTORM's results table is empty (no localizations)");
            return;
        } catch (IllegalStateException e) {
            throw e;
        } catch (Throwable other) {
            // not this ThunderSTORM (or a stand-in): look for its results window
        }
        for (Frame f : Frame.getFrames())
            if (f.isVisible() && THUNDERSTORM_WINDOW.equals(f.getTitle())) return;
        throw new IllegalStateException(none);
    }

    /** Export ThunderSTORM's open results table, with its protocol, with its own recordable command. */
    static void exportThunderstorm(File csv) throws IOException {
        csv.delete();
        IJ.run("Export results", "filepath=[" + csv.getPath() + "] fileformat=[CSV (comma separated)] saveprotocol=true");
        if (!csv.isFile() || csv.length() == 0)
            throw new IllegalStateException("no ThunderSTORM results table is open (Export results wrote nothing)");
    }

    /** Before the long run: load the model (a bad name or file fails here, in seconds), resolve
     *  stride=auto by the device, and say in the Log what will run. */
    static void ready(DBlinkRuntime rt, Map<String, String> opts) throws Exception {
        IJ.showStatus("DBlink: loading the model...");
        String json;
        if (rt != null) {
            json = rt.prepare(toJson(opts));
        } else {
            checkVersion(python(opts.get("python")));
            json = prepareSubprocess(opts);
        }
        String stride = jsonField(json, "stride");
        boolean auto = !opts.containsKey("stride") || "auto".equalsIgnoreCase(opts.get("stride"));
        if (stride != null) opts.put("stride", stride);
        IJ.log("DBlink: model " + jsonField(json, "model") + " ready (" + jsonField(json, "pixel_size_nm")
            + " nm pixels, " + jsonField(json, "frames_per_step") + " frames per step, window +-"
            + jsonField(json, "window") + " steps) on " + jsonField(json, "device") + "; stride " + stride
            + (auto ? " (auto: " + ("1".equals(stride) ? "exact mode on a GPU" : "fast mode on a CPU") + ")" : ""));
    }

    /** {@code python -m dblink.imagej prepare JSON}: the same check as the in-process runtime's. */
    static String prepareSubprocess(Map<String, String> opts) throws Exception {
        String py = python(opts.get("python"));
        Process p;
        try {
            p = new ProcessBuilder(py, "-m", "dblink.imagej", "prepare", toJson(opts)).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new IllegalStateException("cannot start Python '" + py + "' (" + e.getMessage() + ")");
        }
        p.getOutputStream().close();
        List<String> lines = readAll(p);
        int rc = p.waitFor();
        String last = lines.isEmpty() ? "" : lines.get(lines.size() - 1).trim();
        if (rc != 0) {
            for (int i = lines.size() - 1; i >= 0; i--) {
                String l = lines.get(i).trim();
                if (l.startsWith("dblink: error:")) throw new IllegalStateException(l.substring("dblink: error:".length()).trim());
            }
            if (rc > 128) throw new IllegalStateException("dblink stopped unexpectedly (killed by signal " + (rc - 128) + ") while loading the model");
            throw new IllegalStateException("dblink could not prepare the run (exit code " + rc + (last.length() > 0 ? ": " + last : "") + ")");
        }
        if (!last.startsWith("{")) throw new IllegalStateException("dblink could not prepare the run (" + last + ")");
        return last;
    }

    /** The active image's selection as x0,y0,w,h in nm (needs a spatial calibration in nm or µm). */
    static String selectionRoi() {
        ImagePlus imp = WindowManager.getCurrentImage();
        Roi roi = imp == null ? null : imp.getRoi();
        if (roi == null) throw new IllegalArgumentException("roi=selection, but there is no image with a selection");
        Calibration cal = imp.getCalibration();
        String unit = cal.getUnit().toLowerCase();
        double f;
        if (unit.equals("nm") || unit.equals("nanometer")) f = 1.0;
        else if (unit.equals("micron") || unit.equals("um") || unit.equals("\u00b5m")) f = 1000.0;
        else throw new IllegalArgumentException("roi=selection needs an image calibrated in nm or µm (it is in '" + unit + "')");
        Rectangle r = roi.getBounds();
        return (r.x * cal.pixelWidth * f) + "," + (r.y * cal.pixelHeight * f) + ","
            + (r.width * cal.pixelWidth * f) + "," + (r.height * cal.pixelHeight * f);
    }

    static ImagePlus inProcess(DBlinkRuntime rt, Map<String, String> o) {
        IJ.showStatus("DBlink: reconstructing (in-process Python)...");
        return rt.reconstruct(toJson(o));
    }

    /** Options as a flat JSON object of strings. */
    public static String toJson(Map<String, String> o) {
        StringBuilder sb = new StringBuilder("{");
        for (Map.Entry<String, String> e : o.entrySet()) {
            if (sb.length() > 1) sb.append(',');
            sb.append(quote(e.getKey())).append(':').append(quote(e.getValue()));
        }
        return sb.append('}').toString();
    }

    static String quote(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') sb.append('\\').append(c);
            else if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
            else sb.append(c);
        }
        return sb.append('"').toString();
    }

    /** The Python executable: option, plugin setting, $DBLINK_PYTHON, else python3/python. */
    static String python(String option) {
        if (option != null && option.length() > 0) return option;
        String p = Prefs.get("dblink.python", "");
        if (p.length() > 0) return p;
        String env = System.getenv("DBLINK_PYTHON");
        if (env != null && env.length() > 0) return env;
        return System.getProperty("os.name", "").toLowerCase().startsWith("win") ? "python" : "python3";
    }

    /** The dblink command line for these options (no shell: one argument per element). */
    public static List<String> command(Map<String, String> o, String output) {
        List<String> cmd = new ArrayList<String>();
        cmd.add(python(o.get("python")));
        cmd.add("-m");
        cmd.add("dblink.cli");
        cmd.add("reconstruct");
        cmd.add("-o");
        cmd.add(output);
        cmd.add("--progress");
        cmd.add("json");
        cmd.add("--overwrite");
        String[][] flags = {{"model", "--model"}, {"pixel_size", "--pixel-size"},
            {"frames_per_step", "--frames-per-step"}, {"window", "--window"}, {"stride", "--stride"},
            {"roi", "--roi"}, {"camera_pixel", "--camera-pixel"}, {"columns", "--columns"},
            {"first_frame", "--first-frame"},
            {"last_frame", "--last-frame"}, {"device", "--device"}, {"batch", "--batch"},
            {"precision", "--precision"}, {"tta", "--tta"}, {"tile", "--tile"},
            {"max_memory", "--max-memory"}, {"exposure", "--exposure"},
            {"confidence_every", "--confidence-every"}};
        for (String[] f : flags) {
            if (o.containsKey(f[0])) { cmd.add(f[1]); cmd.add(o.get(f[0])); }
        }
        if (o.containsKey("skip_confidence")) cmd.add("--no-confidence");
        if (o.containsKey("auto")) cmd.add("--auto");
        cmd.add("--");  // the table last, after "--": a path starting with "-" is not an option
        cmd.add(o.get("table"));
        return cmd;
    }

    /** The version the Python's dblink reports; refuses a different major.minor than the plugin's. */
    static void checkVersion(String python) throws Exception {
        Process p;
        try {
            p = new ProcessBuilder(python, "-m", "dblink.cli", "--version").redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new IllegalStateException("cannot start Python '" + python + "' (" + e.getMessage()
                + "); set it in Plugins>DBlink>DBlink Settings..., with python=[...], or $DBLINK_PYTHON");
        }
        p.getOutputStream().close();
        String out = joined(readAll(p)).trim();
        int rc = p.waitFor();
        if (rc != 0 || !out.startsWith("dblink ")) {
            if (out.contains("No module named"))
                throw new IllegalStateException("dblink is not installed for Python '" + python
                    + "'; set the Python of the dblink environment in Plugins>DBlink>DBlink Settings...");
            throw new IllegalStateException("Python '" + python + "' does not run dblink (" + lastLine(out) + ")");
        }
        String version = out.substring("dblink ".length()).trim();
        if (!majorMinor(version).equals(majorMinor(VERSION)))
            throw new IllegalStateException("the DBlink plugin is " + VERSION + " but Python's dblink is " + version
                + "; install the matching plugin (make install-fiji) or dblink version");
    }

    static String majorMinor(String v) {
        String[] parts = v.split("\\.");
        return parts.length >= 2 ? parts[0] + "." + parts[1] : v;
    }

    static List<String> readAll(Process p) throws IOException {
        List<String> lines = new ArrayList<String>();
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String line;
        while ((line = r.readLine()) != null) lines.add(line);
        return lines;
    }

    static String lastLine(String s) {
        String[] lines = s.trim().split("\n");
        return lines.length == 0 ? "" : lines[lines.length - 1].trim();
    }

    ImagePlus subprocess(Map<String, String> o) throws Exception {
        String save = o.get("save");  // (Python's version was checked by ready())
        File out = save != null ? new File(save) : File.createTempFile("dblink-", ".tif");
        List<String> cmd = command(o, out.getPath());
        final Process p;
        try {
            p = new ProcessBuilder(cmd).start();
        } catch (IOException e) {
            throw new IllegalStateException("cannot start Python '" + cmd.get(0) + "' (" + e.getMessage()
                + "); set it in Plugins>DBlink>DBlink Settings..., with python=[...], or $DBLINK_PYTHON");
        }
        p.getOutputStream().close();
        final List<String> errLines = new ArrayList<String>();
        Thread errReader = new Thread(new Runnable() {
            public void run() {
                try {
                    BufferedReader r = new BufferedReader(new InputStreamReader(p.getErrorStream(), StandardCharsets.UTF_8));
                    String line;
                    while ((line = r.readLine()) != null) synchronized (errLines) { errLines.add(line); }
                } catch (IOException ignored) { }
            }
        }, "dblink-stderr");
        errReader.start();
        final boolean[] cancelled = {false};
        Thread watcher = new Thread(new Runnable() {
            public void run() {
                while (true) {
                    try { p.exitValue(); return; } catch (IllegalThreadStateException running) { }
                    if (IJ.escapePressed()) { cancelled[0] = true; p.destroy(); return; }
                    try { Thread.sleep(100); } catch (InterruptedException e) { return; }
                }
            }
        }, "dblink-cancel");
        watcher.start();
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String line;
        while ((line = r.readLine()) != null) handleEvent(line);
        int rc = p.waitFor();
        errReader.join(2000);
        watcher.interrupt();
        if (cancelled[0]) {
            if (save == null) out.delete();
            throw new Cancelled();
        }
        if (rc != 0) {
            if (save == null) out.delete();
            String msg = null;
            synchronized (errLines) {
                for (int i = errLines.size() - 1; i >= 0 && msg == null; i--) {
                    String l = errLines.get(i).trim();
                    if (l.startsWith("dblink: error:")) msg = l.substring("dblink: error:".length()).trim();
                }
                if (msg == null && rc == 1 && joined(errLines).contains("No module named dblink"))
                    msg = "dblink is not installed for Python '" + cmd.get(0) + "'; set the Python of the dblink environment in Plugins>DBlink>DBlink Settings...";
                if (msg == null && rc > 128)
                    msg = "dblink stopped unexpectedly (killed by signal " + (rc - 128) + ", e.g. out of memory); nothing was written";
                if (msg == null) msg = "dblink exited with code " + rc + (errLines.isEmpty() ? "" : ": " + errLines.get(errLines.size() - 1).trim());
            }
            throw new IllegalStateException(msg);
        }
        ImagePlus imp = IJ.openImage(out.getPath());
        if (save == null) out.delete();
        if (imp == null) throw new IllegalStateException("cannot open dblink's output " + out);
        return imp;
    }

    static String joined(List<String> lines) {
        StringBuilder sb = new StringBuilder();
        for (String l : lines) sb.append(l).append('\n');
        return sb.toString();
    }

    /** One JSON line of `dblink reconstruct --progress json`. */
    static void handleEvent(String line) {
        String event = jsonField(line, "event");
        if ("progress".equals(event)) {
            double step = parseNumber(jsonField(line, "step")), total = parseNumber(jsonField(line, "total"));
            double eta = parseNumber(jsonField(line, "eta_s"));
            if (total > 0) IJ.showProgress(step / total);
            IJ.showStatus("DBlink: " + (long) step + "/" + (long) total + " steps"
                + (Double.isNaN(eta) ? "" : ", " + Math.round(eta) + " s left") + " (Esc cancels)");
        } else if ("warning".equals(event)) {
            IJ.log("DBlink warning: " + jsonField(line, "message"));
        } else if ("done".equals(event)) {
            IJ.showProgress(1.0);
        }
    }

    static double parseNumber(String s) {
        try { return s == null ? Double.NaN : Double.parseDouble(s); } catch (NumberFormatException e) { return Double.NaN; }
    }

    /** The value of a top-level field of a flat JSON object (strings unescaped; numbers as text). */
    static String jsonField(String json, String key) {
        int i = json.indexOf("\"" + key + "\"");
        if (i < 0) return null;
        i = json.indexOf(':', i + key.length() + 2);
        if (i < 0) return null;
        i++;
        while (i < json.length() && json.charAt(i) == ' ') i++;
        if (i >= json.length()) return null;
        if (json.charAt(i) == '"') {
            StringBuilder sb = new StringBuilder();
            for (int j = i + 1; j < json.length(); j++) {
                char c = json.charAt(j);
                if (c == '\\' && j + 1 < json.length()) {
                    char n = json.charAt(++j);
                    if (n == 'u' && j + 4 < json.length()) { sb.append((char) Integer.parseInt(json.substring(j + 1, j + 5), 16)); j += 4; }
                    else sb.append(n == 'n' ? '\n' : n == 't' ? '\t' : n);
                } else if (c == '"') return sb.toString();
                else sb.append(c);
            }
            return sb.toString();
        }
        int j = i;
        while (j < json.length() && ",}".indexOf(json.charAt(j)) < 0) j++;
        String v = json.substring(i, j).trim();
        return "null".equals(v) ? null : v;
    }

    /** A Python exception's message without the JPype wrapping. */
    static String cleanMessage(String msg) {
        String m = msg.trim();
        int k = m.lastIndexOf("DBlinkError:");
        if (k >= 0) m = m.substring(k + "DBlinkError:".length()).trim();
        int nl = m.indexOf('\n');
        return nl > 0 ? m.substring(0, nl) : m;
    }

    /** One readable message: a dialog when interactive, a log line in macros, batch mode or headless. */
    static void fail(String msg, boolean fromMacro) {
        lastError = msg;
        IJ.showProgress(1.0);
        IJ.showStatus("DBlink: error");
        if (fromMacro || GraphicsEnvironment.isHeadless() || Interpreter.isBatchMode()) IJ.log("DBlink error: " + msg);
        else IJ.error("DBlink", msg);
    }

    static class Cancelled extends Exception {
        Cancelled() { super("cancelled"); }
    }
}
