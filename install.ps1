<#
.SYNOPSIS
    Install the ollama-stack CLI (Windows PowerShell 5.1+ or PowerShell 7+).

.DESCRIPTION
    Run from a checkout:  powershell -ExecutionPolicy Bypass -File .\install.ps1
    Safe to run again to reinstall or upgrade.

    Where it installs, first that applies:
      1. pipx, when pipx is on PATH            (pipx install --force)
      2. the active virtualenv (VIRTUAL_ENV)   (its own pip)
      3. your user site                        (pip install --user)

    Environment:
      PYTHON=C:\path\to\python.exe  Python (>= 3.10) to use; default: py -3, then python, then python3
      OLLAMA_STACK_SOURCE=SPEC      what to install (any pip spec: a wheel, a directory, a version);
                                    default: the checkout this script is in

    The CLI itself needs Docker Engine 20.10+ with Compose v2 (Docker Desktop has both).
#>
[CmdletBinding()]
param(
    [Alias('h')]
    [switch]$Help,
    # Catches GNU-style --help (and reports anything else as unknown).
    [Parameter(ValueFromRemainingArguments = $true)]
    [string[]]$Rest
)

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'
# PowerShell 7.3+: a native command's non-zero exit must not throw; we check $LASTEXITCODE.
$PSNativeCommandUseErrorActionPreference = $false

$Tag = 'ollama-stack install:'
$MinPy = '3.10'
$PyCheck = 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'
$PyVersion = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
# Windows PowerShell 5.1 is Windows-only; pwsh 6+ sets $IsWindows.
$OnWindows = ($PSVersionTable.PSVersion.Major -lt 6) -or $IsWindows
$ExeName = if ($OnWindows) { 'ollama-stack.exe' } else { 'ollama-stack' }

function Write-Info([string]$Message) { Write-Host "$Tag $Message" }
function Write-Warn([string]$Message) { [Console]::Error.WriteLine("$Tag warning: $Message") }
function Stop-Install([string]$Message) {
    [Console]::Error.WriteLine("$Tag error: $Message")
    exit 1
}
function Stop-NoPython([string]$Message) {
    [Console]::Error.WriteLine("$Tag error: $Message")
    [Console]::Error.WriteLine(@"
$Tag Python $MinPy+ with pip is required. Install it, then run this script again:
  Windows:        winget install Python.Python.3.12   (or https://www.python.org/downloads/ ;
                  tick "Add python.exe to PATH", keep "py launcher" and "pip" selected)
  (or set `$env:PYTHON to the full path of an existing Python $MinPy+ python.exe)
"@)
    exit 1
}

foreach ($a in @($Rest)) {
    if ($null -eq $a) { continue }
    if ($a -in @('--help', '/?')) { $Help = $true; continue }
    [Console]::Error.WriteLine("$Tag error: unknown argument: $a (see -Help)")
    exit 2
}

if ($Help) {
    Write-Host @"
Usage: powershell -ExecutionPolicy Bypass -File .\install.ps1 [-Help]

Installs the ``ollama-stack`` command and checks that it runs.

Where it installs, first that applies:
  1. pipx, when pipx is on PATH            (pipx install --force)
  2. the active virtualenv (VIRTUAL_ENV)   (its own pip)
  3. your user site                        (pip install --user)

Environment:
  PYTHON=C:\path\to\python.exe  Python (>= 3.10) to use; default: py -3, then python, then python3
  OLLAMA_STACK_SOURCE=SPEC      what to install (any pip spec: a wheel, a directory, a version);
                                default: the checkout this script is in

The CLI itself needs Docker Engine 20.10+ with Compose v2 (Docker Desktop has both).
"@
    exit 0
}

# Run a native command; return its combined output as strings and leave the exit code in
# $LASTEXITCODE. Never throws for stderr output or a non-zero exit (Windows PowerShell 5.1
# turns redirected stderr into errors, which 'Stop' would make fatal).
function Invoke-Native([string]$Exe, [string[]]$Arguments) {
    $saved = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try {
        $out = @(& $Exe @Arguments 2>&1 | ForEach-Object { "$_" })
    } catch {
        $out = @("$_")
        $global:LASTEXITCODE = 127
    } finally {
        $ErrorActionPreference = $saved
    }
    return , $out
}

# Run a native command with its output shown; return $true when it exited 0.
function Invoke-Shown([string]$Exe, [string[]]$Arguments) {
    $saved = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try {
        & $Exe @Arguments 2>&1 | ForEach-Object { [Console]::Error.WriteLine("$_") }
        return ($LASTEXITCODE -eq 0)
    } catch {
        [Console]::Error.WriteLine("$_")
        return $false
    } finally {
        $ErrorActionPreference = $saved
    }
}

# ---- what to install ----------------------------------------------------------------
if ($env:OLLAMA_STACK_SOURCE) {
    $Src = $env:OLLAMA_STACK_SOURCE
    # A local wheel or directory: make it absolute, without a trailing slash (Windows
    # PowerShell 5.1 would pass 'dir\' quoted as "dir\" and Python would read \" as a quote).
    if (Test-Path -LiteralPath $Src) { $Src = (Resolve-Path -LiteralPath $Src).Path.TrimEnd('\', '/') }
} else {
    $Src = $PSScriptRoot
    $pyproject = if ($Src) { Join-Path $Src 'pyproject.toml' } else { $null }
    if (-not $pyproject -or -not (Test-Path -LiteralPath $pyproject) -or
        -not (Select-String -LiteralPath $pyproject -Pattern '^name = "ollama-stack"' -Quiet)) {
        Stop-Install "no ollama-stack checkout at '$Src'; run this script from the repository, or set `$env:OLLAMA_STACK_SOURCE to a pip spec (e.g. a wheel path)"
    }
}

# ---- find Python >= 3.10 ------------------------------------------------------------
# Each candidate is an exe plus leading arguments (the py launcher needs -3).
function Get-PyVersion([string[]]$Cand) {
    $extra = @($Cand | Select-Object -Skip 1)
    $out = Invoke-Native $Cand[0] ($extra + @('-c', $PyVersion))
    if ($LASTEXITCODE -ne 0 -or $out.Count -eq 0) { return $null }
    return ($out[-1]).Trim()
}
function Test-PyOk([string[]]$Cand) {
    $extra = @($Cand | Select-Object -Skip 1)
    $null = Invoke-Native $Cand[0] ($extra + @('-c', $PyCheck))
    return ($LASTEXITCODE -eq 0)
}

$Chosen = $null
if ($env:PYTHON) {
    if (-not (Get-Command $env:PYTHON -ErrorAction SilentlyContinue)) {
        Stop-NoPython "PYTHON=$($env:PYTHON) was not found"
    }
    $v = Get-PyVersion @($env:PYTHON)
    if (-not $v) { Stop-NoPython "PYTHON=$($env:PYTHON) does not run as Python" }
    if (-not (Test-PyOk @($env:PYTHON))) { Stop-NoPython "PYTHON=$($env:PYTHON) is Python $v; need $MinPy+" }
    $Chosen = @($env:PYTHON)
} else {
    $candidates = @()
    if ($env:VIRTUAL_ENV) {
        foreach ($p in @((Join-Path $env:VIRTUAL_ENV 'Scripts\python.exe'), (Join-Path $env:VIRTUAL_ENV 'bin/python'))) {
            if (Test-Path -LiteralPath $p) { $candidates += , @($p); break }
        }
    }
    $candidates += , @('py', '-3')
    $candidates += , @('python')
    $candidates += , @('python3')
    $found = @()
    foreach ($cand in $candidates) {
        if (-not (Get-Command $cand[0] -ErrorAction SilentlyContinue)) { continue }
        # Also skips the Microsoft Store "python" alias, which does not run Python.
        $v = Get-PyVersion $cand
        if (-not $v) { continue }
        if (Test-PyOk $cand) { $Chosen = $cand; break }
        $found += "$($cand -join ' ')=$v"
    }
    if (-not $Chosen) {
        if ($found.Count -gt 0) { Stop-NoPython "found only older Python: $($found -join ', '); need $MinPy+" }
        Stop-NoPython 'no Python found (tried py -3, python, python3)'
    }
}
# Resolve the launcher/alias to the real interpreter so every step uses the same one.
$extra = @($Chosen | Select-Object -Skip 1)
$out = Invoke-Native $Chosen[0] ($extra + @('-c', 'import sys; print(sys.executable)'))
$Py = if ($LASTEXITCODE -eq 0 -and $out.Count -gt 0) { ($out[-1]).Trim() } else { '' }
if (-not $Py -or -not (Test-Path -LiteralPath $Py)) { Stop-Install "could not resolve the Python interpreter ($($Chosen -join ' '))" }
Write-Info "using Python $(Get-PyVersion @($Py)) at $Py"

function Get-PyOutput([string]$Code) {
    $o = Invoke-Native $Py @('-c', $Code)
    if ($LASTEXITCODE -ne 0 -or $o.Count -eq 0) { return '' }
    return ($o[-1]).Trim()
}
function Assert-Pip([string]$Hint) {
    $null = Invoke-Native $Py @('-m', 'pip', '--version')
    if ($LASTEXITCODE -ne 0) {
        $msg = "pip is not available for $Py"
        if ($Hint) { $msg += "; $Hint" }
        Stop-NoPython $msg
    }
}
function Add-PathHint([string]$Dir) {
    $parts = @($env:PATH -split [IO.Path]::PathSeparator | ForEach-Object { $_.TrimEnd('\', '/') })
    if ($parts -notcontains $Dir.TrimEnd('\', '/')) {
        Write-Warn "$Dir is not on your PATH; add it (then open a new terminal):"
        [Console]::Error.WriteLine("  [Environment]::SetEnvironmentVariable('Path', [Environment]::GetEnvironmentVariable('Path', 'User') + ';$Dir', 'User')")
    }
}
# Install/upgrade $Src and its dependencies. pip always reinstalls a directory but skips a
# wheel/sdist file of the installed version, so force that one.
function Install-Src([string[]]$PipArgs) {
    $common = @('-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-warn-script-location') + $PipArgs
    if (-not (Invoke-Shown $Py ($common + @('--upgrade', $Src)))) { return $false }
    if (Test-Path -LiteralPath $Src -PathType Leaf) {
        if (-not (Invoke-Shown $Py ($common + @('--force-reinstall', '--no-deps', $Src)))) { return $false }
    }
    return $true
}

# ---- install ------------------------------------------------------------------------
$Bin = $null
$pipx = Get-Command pipx -ErrorAction SilentlyContinue
$inVenv = (Get-PyOutput 'import sys; print(int(sys.prefix != sys.base_prefix))') -eq '1'

if ($pipx) {
    $Mode = 'pipx'
    Write-Info "installing with pipx from $Src"
    # pipx ignores (and warns about) --python when --force reuses an existing venv.
    $listed = Invoke-Native 'pipx' @('list', '--short')
    $pipxArgs = @('install', '--force')
    if (-not ($listed | Where-Object { $_ -match '^ollama-stack ' })) { $pipxArgs += @('--python', $Py) }
    if (-not (Invoke-Shown 'pipx' ($pipxArgs + @($Src)))) { Stop-Install "pipx install failed (pipx's output above)" }
    $binOut = Invoke-Native 'pipx' @('environment', '--value', 'PIPX_BIN_DIR')
    $pipxBin = if ($LASTEXITCODE -eq 0 -and $binOut.Count -gt 0) { ($binOut[-1]).Trim() } else { '' }
    if (-not $pipxBin) { $pipxBin = if ($env:PIPX_BIN_DIR) { $env:PIPX_BIN_DIR } else { Join-Path $HOME '.local\bin' } }
    $Bin = Join-Path $pipxBin $ExeName
    Add-PathHint $pipxBin
} elseif ($inVenv) {
    $Mode = "virtualenv $(Get-PyOutput 'import sys; print(sys.prefix)')"
    Assert-Pip "add it to the venv with: $Py -m ensurepip --upgrade"
    Write-Info "installing into the $Mode from $Src"
    if (-not (Install-Src @())) { Stop-Install "pip install failed (pip's output above)" }
    $scripts = Get-PyOutput "import sysconfig; print(sysconfig.get_path('scripts'))"
    if ($scripts) { $Bin = Join-Path $scripts $ExeName }
} else {
    $Mode = 'user site (pip install --user)'
    Assert-Pip ''
    Write-Info "installing into the $Mode from $Src"
    if (-not (Install-Src @('--user'))) {
        Stop-Install "pip install --user failed (pip's output above). If pip said externally-managed-environment, install pipx (python -m pip install --user pipx) or activate a virtualenv, then run this again."
    }
    $scripts = Get-PyOutput "import sysconfig; print(sysconfig.get_path('scripts', sysconfig.get_preferred_scheme('user')))"
    if ($scripts) {
        $Bin = Join-Path $scripts $ExeName
        Add-PathHint $scripts
    }
}

# ---- verify -------------------------------------------------------------------------
# Run the command where it was installed; only if it is not there, whatever is on PATH.
if (-not $Bin -or -not (Test-Path -LiteralPath $Bin)) {
    $cmd = Get-Command ollama-stack -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
    if (-not $cmd) { Stop-Install "installed via $Mode, but no ollama-stack command was found (not on PATH either)" }
    $Bin = $cmd.Path
}
$verOut = Invoke-Native $Bin @('--version')
$version = ($verOut -join ' ').Trim()
if ($LASTEXITCODE -ne 0) { Stop-Install "installed, but '$Bin --version' failed: $version" }

# ---- Docker (needed at run time, not to install) ------------------------------------
if (-not (Get-Command docker -ErrorAction SilentlyContinue)) {
    Write-Warn 'docker not found on PATH; ollama-stack needs Docker Engine 20.10+ with Compose v2 (Docker Desktop: https://docs.docker.com/desktop/)'
} else {
    $null = Invoke-Native 'docker' @('compose', 'version')
    if ($LASTEXITCODE -ne 0) {
        $composeOk = $false
        if (Get-Command docker-compose -ErrorAction SilentlyContinue) {
            $null = Invoke-Native 'docker-compose' @('version')
            $composeOk = ($LASTEXITCODE -eq 0)
        }
        if (-not $composeOk) { Write-Warn "Docker Compose v2 not found (neither 'docker compose' nor 'docker-compose'); ollama-stack needs it" }
    }
}

Write-Info "installed $version via ${Mode}: $Bin"
$onPath = Get-Command ollama-stack -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
if (-not $onPath) {
    Write-Info "run it as $Bin (or add $(Split-Path -Parent $Bin) to PATH); try: & '$Bin' --help"
} elseif ((Resolve-Path -LiteralPath $onPath.Path).Path -ne (Resolve-Path -LiteralPath $Bin).Path) {
    Write-Warn "another ollama-stack comes first on your PATH: $($onPath.Path) (this one is $Bin)"
} else {
    Write-Info 'try: ollama-stack --help'
}
exit 0
