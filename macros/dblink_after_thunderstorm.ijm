// DBlink after ThunderSTORM: localize a raw SMLM movie with ThunderSTORM, then reconstruct a
// super-resolved video with DBlink from ThunderSTORM's results table.
//
// In Fiji: open the raw movie, then Plugins > Macros > Run... > dblink_after_thunderstorm.ijm;
// a dialog asks for the camera, the PSF and DBlink's settings (remembered for the next run).
// From a shell (ThunderSTORM needs a display: a desktop, or xvfb-run on a server):
//   ImageJ-linux64 -macro macros/dblink_after_thunderstorm.ijm "movie=[/data/raw.tif] save=[/data/dblink.tif] quit"
//   xvfb-run -a ImageJ-linux64 -macro macros/dblink_after_thunderstorm.ijm "movie=[/data/raw.tif] save=[/data/dblink.tif] quit"
// (-macro, not -batch: ThunderSTORM's results table needs the ImageJ window.)
//
// Arguments (one string, all optional):
//   movie=[path]          open this raw movie (else the active image is used)
//   camera: leave out to keep ThunderSTORM's own Camera setup (Plugins > ThunderSTORM > Camera setup,
//           remembered by ThunderSTORM), or give its keys (those left out take ThunderSTORM's defaults):
//           pixelsize=NM photons2adu=E offset=ADU isemgain=true|false gainem=G quantumefficiency=QE
//   sigma=PX              PSF sigma in camera pixels for ThunderSTORM's fit (default 1.6)
//   analysis=[...]        ThunderSTORM's whole "Run analysis" option string instead of the default
//   quit                  quit ImageJ when done (for shell commands)
//   anything else goes to DBlink: model=filaments stride=auto save=[/data/out.tif] device=cuda ...
// With save=[...], ThunderSTORM's table and protocol are kept next to the output
// (out.thunderstorm.csv, out.thunderstorm-protocol.txt) and the Log says what was written.
args = getArgument();
if (args == "" && !is("batch mode")) {
    if (nImages == 0) {
        path = File.openDialog("Choose the raw SMLM movie");
        open(path);
    }
    args = askSettings();
}
analysis = parseKey(args, "analysis");
rest = stripKey(args, "analysis");  // the other keys are looked up outside ThunderSTORM's string
movie = parseKey(rest, "movie");
if (movie != "") {
    if (!File.exists(movie)) exit("DBlink: movie not found: " + movie);
    open(movie);
}
if (nImages == 0) exit("DBlink: no raw SMLM movie: open one first, or give movie=[/path/to/raw.tif]");
raw = getTitle();
// the camera: ThunderSTORM's own setup, unless camera settings are given here
cameraKeys = newArray("pixelsize", "photons2adu", "offset", "isemgain", "gainem", "quantumefficiency");
camera = "";
for (i = 0; i < cameraKeys.length; i++) {
    v = parseKey(rest, cameraKeys[i]);
    if (v != "") camera = camera + cameraKeys[i] + "=" + v + " ";
}
if (camera != "") {
    if (indexOf(camera, "isemgain=") < 0) camera = camera + "isemgain=false ";
    run("Camera setup", camera);
    print("DBlink: ThunderSTORM camera setup: " + camera);
}
sigma = parseKey(rest, "sigma");
if (sigma == "") sigma = "1.6";
if (analysis == "") analysis = "filter=[Wavelet filter (B-Spline)] scale=2.0 order=3 detector=[Local maximum] connectivity=8-neighbourhood threshold=std(Wave.F1) estimator=[PSF: Integrated Gaussian] sigma=" + sigma + " fitradius=3 method=[Weighted Least squares] full_image_fitting=false mfaenabled=false renderer=[No Renderer]";
selectImage(raw);
run("Run analysis", analysis);
// DBlink exports the open results table through ThunderSTORM's "Export results" and reconstructs it
dblink = rest;
keys = newArray("movie", "sigma", "pixelsize", "photons2adu", "offset", "isemgain", "gainem", "quantumefficiency");
for (i = 0; i < keys.length; i++) dblink = stripKey(dblink, keys[i]);
quit = indexOf(" " + dblink + " ", " quit ") >= 0;
if (quit) dblink = replace(" " + dblink + " ", " quit ", " ");
if (indexOf(" " + dblink, " model=") < 0) dblink = "model=filaments " + dblink;
if (!quit && indexOf(" " + dblink + " ", " show ") < 0) dblink = dblink + " show";
run("DBlink Reconstruct...", "table=[ThunderSTORM results] " + dblink);
err = call("dblink.DBlink_Reconstruct.lastError");
if (err != "") print("DBlink: " + err);
if (quit) {
    close("*");
    run("Quit");
}
if (err != "") exit("DBlink: " + err);

// the dialog of an interactive run without arguments; its values are remembered (IJ_Prefs.txt)
function askSettings() {
    Dialog.create("DBlink after ThunderSTORM");
    Dialog.addCheckbox("Keep ThunderSTORM's camera setup (Plugins > ThunderSTORM > Camera setup)", pref("keepcamera", "true") == "true");
    Dialog.addNumber("Camera pixel size", parseFloat(pref("pixelsize", "100")), 1, 8, "nm");
    Dialog.addNumber("Photoelectrons per A/D count", parseFloat(pref("photons2adu", "1")), 2, 8, "");
    Dialog.addNumber("Base level (offset)", parseFloat(pref("offset", "100")), 1, 8, "A/D counts");
    Dialog.addCheckbox("EM gain", pref("isemgain", "false") == "true");
    Dialog.addNumber("EM gain", parseFloat(pref("gainem", "100")), 1, 8, "");
    Dialog.addNumber("PSF sigma", parseFloat(pref("sigma", "1.6")), 2, 8, "camera pixels");
    Dialog.addString("DBlink model", pref("model", "filaments"), 20);
    Dialog.addChoice("Stride", newArray("auto", "1", "2", "4", "8", "16"), pref("stride", "auto"));
    Dialog.addMessage("Stride auto: exact (1) on a GPU, 8 on a CPU (about 8x faster, same measured F1).");
    Dialog.addString("Save as (.tif, empty: only show)", pref("save", ""), 40);
    Dialog.show();
    keep = Dialog.getCheckbox();
    px = Dialog.getNumber(); e = Dialog.getNumber(); off = Dialog.getNumber();
    em = Dialog.getCheckbox(); gain = Dialog.getNumber(); s = Dialog.getNumber();
    model = Dialog.getString(); stride = Dialog.getChoice(); save = Dialog.getString();
    setPref("keepcamera", "" + keep); setPref("pixelsize", "" + px); setPref("photons2adu", "" + e);
    setPref("offset", "" + off); setPref("isemgain", "" + em); setPref("gainem", "" + gain);
    setPref("sigma", "" + s); setPref("model", model); setPref("stride", stride); setPref("save", save);
    a = "sigma=" + s + " model=[" + model + "] stride=" + stride;
    if (!keep) {
        a = a + " pixelsize=" + px + " photons2adu=" + e + " offset=" + off + " isemgain=" + em;
        if (em) a = a + " gainem=" + gain;
    }
    if (save != "") a = a + " save=[" + save + "]";
    return a;
}

function pref(key, fallback) {
    return call("ij.Prefs.get", "dblink.ts." + key, fallback);
}

function setPref(key, value) {
    call("ij.Prefs.set", "dblink.ts." + key, value);
}

function parseKey(s, key) {
    i = indexOf(" " + s, " " + key + "=");
    if (i < 0) return "";
    v = substring(s, i + lengthOf(key) + 1);
    // like ImageJ's Macro.getValue: a bracketed value ends at "] " or at the final "]"
    if (startsWith(v, "[")) return substring(v, 1, indexOf(v + " ", "] "));
    j = indexOf(v, " ");
    if (j < 0) return v;
    return substring(v, 0, j);
}

function stripKey(s, key) {
    v = parseKey(s, key);
    if (v == "") return s;
    whole = key + "=" + v;
    if (indexOf(s, key + "=[") >= 0) whole = key + "=[" + v + "]";
    i = indexOf(s, whole);
    return substring(s, 0, i) + substring(s, i + lengthOf(whole));
}
