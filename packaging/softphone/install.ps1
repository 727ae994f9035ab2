# Saved as UTF-8 with a byte-order mark: Windows PowerShell 5 reads a script without one in the
# system's code page (GBK on Chinese Windows) and would garble the Chinese below.
<#
.SYNOPSIS
  Installs warmline's softphone for this Windows user, in one command (no administrator rights):

    powershell -ExecutionPolicy Bypass -File install.ps1 [-Server URL] [-Wheel FILE] [-StartAtLogin] [-ZdsrDll FILE]

.DESCRIPTION
  - finds Python 3.12 or 3.11 (the "py" launcher); when there is none, installs Python 3.12 for
    this user with winget;
  - makes a virtualenv in %LOCALAPPDATA%\warmline\softphone\venv and installs the softphone wheel
    (the newest warmline_softphone-*.whl beside this script unless -Wheel is given);
  - asks for the server's address once (unless -Server) and keeps it in
    %APPDATA%\warmline\softphone.toml — the one setting the softphone needs;
  - copies 争渡读屏's ZDSRAPI_x64.dll when -ZdsrDll is given, so the phone speaks through 争渡;
  - adds "warmline 软电话" to the Start menu and, if wanted, to the Startup folder (start at login).
#>
param(
  [string]$Server,
  [string]$Wheel,
  [switch]$StartAtLogin,
  [switch]$NoStartAtLogin,
  [string]$ZdsrDll
)
$ErrorActionPreference = "Stop"

function Find-Python {
  foreach ($version in "3.12", "3.11") {
    try {
      $exe = & py "-$version" -c "import sys; print(sys.executable)" 2>$null
      if ($LASTEXITCODE -eq 0 -and $exe) { return $exe.Trim() }
    } catch { }
  }
  return $null
}

$python = Find-Python
if (-not $python) {
  Write-Host "没有找到 Python 3.12 或 3.11，正在用 winget 为当前用户安装 Python 3.12 … / Installing Python 3.12 with winget …"
  winget install --id Python.Python.3.12 --exact --scope user --accept-package-agreements --accept-source-agreements
  $python = Find-Python
  if (-not $python) { throw "Python 3.12 或 3.11 仍未找到，请先安装 Python（python.org）后再运行本脚本。 / Python 3.11 or 3.12 is still missing." }
}

if (-not $Wheel) {
  $Wheel = Get-ChildItem -Path $PSScriptRoot -Filter "warmline_softphone-*.whl" |
    Sort-Object LastWriteTime | Select-Object -Last 1 -ExpandProperty FullName
}
if (-not $Wheel -or -not (Test-Path $Wheel)) {
  throw "没有找到软电话安装包 warmline_softphone-*.whl（应与本脚本放在同一文件夹）。 / No warmline_softphone-*.whl beside this script."
}

$appDir = Join-Path $env:LOCALAPPDATA "warmline\softphone"
$venv = Join-Path $appDir "venv"
New-Item -ItemType Directory -Force -Path $appDir | Out-Null
if (-not (Test-Path (Join-Path $venv "Scripts\python.exe"))) { & $python -m venv $venv }
& (Join-Path $venv "Scripts\python.exe") -m pip install --quiet --upgrade $Wheel
if ($LASTEXITCODE -ne 0) { throw "pip 安装失败 / pip could not install $Wheel" }

while (-not ($Server -match '^https?://')) {
  if ($Server) { Write-Host "服务器地址应以 https:// 开头。 / The address starts with https://" }
  $Server = Read-Host "服务器地址 / Server address (https://…)"
}
$configDir = Join-Path $env:APPDATA "warmline"
$config = Join-Path $configDir "softphone.toml"
New-Item -ItemType Directory -Force -Path $configDir | Out-Null
$kept = @()
if (Test-Path $config) { $kept = @(Get-Content -Path $config -Encoding UTF8 | Where-Object { $_ -notmatch '^\s*server\s*=' }) }
$escaped = $Server.Replace('\', '\\').Replace('"', '\"')
$text = (@("server = `"$escaped`"") + $kept) -join "`n"
[System.IO.File]::WriteAllText($config, $text + "`n", (New-Object System.Text.UTF8Encoding($false)))

if ($ZdsrDll) { Copy-Item -Force -Path $ZdsrDll -Destination (Join-Path $appDir "ZDSRAPI_x64.dll") }

$exe = Join-Path $venv "Scripts\warmline-softphone.exe"
$shell = New-Object -ComObject WScript.Shell
function New-Shortcut([string]$folder) {
  $link = $shell.CreateShortcut((Join-Path $folder "warmline 软电话.lnk"))
  $link.TargetPath = $exe
  $link.Arguments = "--open-page"
  $link.WorkingDirectory = $appDir
  $link.Description = "warmline 软电话 / softphone"
  $link.Save()
}
New-Shortcut ([Environment]::GetFolderPath("Programs"))
if (-not $StartAtLogin -and -not $NoStartAtLogin) {
  $answer = Read-Host "登录 Windows 时自动启动软电话？/ Start the softphone at login? (Y/N)"
  $StartAtLogin = $answer -match '^[yY是]'
}
if ($StartAtLogin) { New-Shortcut ([Environment]::GetFolderPath("Startup")) }

Write-Host "安装完成：开始菜单中的“warmline 软电话”。服务器：$Server / Installed: Start menu, warmline 软电话. Server: $Server"
