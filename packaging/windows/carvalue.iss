; Inno Setup 6 script for CarValue on Windows.  UNTESTED: written and reviewed on Linux, where
; neither PyInstaller's Windows build nor Inno Setup can run.  See packaging/README.md.
;
; Build (on Windows, from the repository root, in a venv holding only the runtime deps +
; PyInstaller, the same pins as packaging/constraints.txt):
;   pyinstaller --noconfirm --distpath dist --workpath build\pyinstaller packaging\carvalue.spec
;   "%ProgramFiles(x86)%\Inno Setup 6\ISCC.exe" /DAppVersion=0.1.0 packaging\windows\carvalue.iss
; Output: dist\CarValue-<version>-windows-x64-setup.exe

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "CarValue"
#define RepoRoot AddBackslash(SourcePath) + "..\.."

[Setup]
; A fixed AppId: upgrades replace the previous install instead of installing beside it.
AppId={{6F1C4E52-8C3B-4D0A-9E57-2B7A1C0D9F43}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=CarValue developers
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#RepoRoot}\dist
OutputBaseFilename={#AppName}-{#AppVersion}-windows-x64-setup
SetupIconFile={#RepoRoot}\resources\icons\carvalue.ico
UninstallDisplayIcon={app}\CarValue.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; The PyInstaller onedir: CarValue.exe (windowed), carvalue-cli.exe (console: --self-test,
; predict) and _internal\ with Python, Qt, ONNX Runtime and the bundled model.
Source: "{#RepoRoot}\dist\CarValue\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\CarValue.exe"
Name: "{group}\{cm:UninstallProgram,{#AppName}}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\CarValue.exe"; Tasks: desktopicon

[Run]
; Smoke test after install (hidden console); a failure shows in the installer's log.
Filename: "{app}\carvalue-cli.exe"; Parameters: "--self-test"; Flags: runhidden waituntilterminated; StatusMsg: "Checking the installation..."
Filename: "{app}\CarValue.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
